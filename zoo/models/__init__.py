"""GAN families, one module each; `zoo.registry` imports a family's module on lookup."""
