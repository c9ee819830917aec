"""Evaluation: metrics from activations, the zoo's feature networks, and model evaluation.

`zoo.eval.metrics` is pure numpy and imports no TensorFlow; the feature networks live in
`zoo.eval.classifier`, evaluating a model in `zoo.eval.evaluate`, and the training callback in
`zoo.eval.callback`.
"""
