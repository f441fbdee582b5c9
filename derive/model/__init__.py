"""The model: activations, losses, update rules, the network and its numbers, circuits."""
