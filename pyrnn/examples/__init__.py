"""Small runnable examples of training with pyrnn (``python -m pyrnn.examples.<name>``)."""
