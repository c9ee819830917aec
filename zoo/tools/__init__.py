"""The lectures' tools: latent interpolation and arithmetic, the discriminator-feature probe and
the theory lab. Run them as `python -m zoo.tools interpolate|arithmetic|probe|theory ...`."""
