"""edgeprune: prune, quantize, compile and profile neural networks for Arm devices."""
