"""Export of trained generators to TF Serving and TFLite (see the export issue)."""
