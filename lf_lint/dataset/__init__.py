"""The datasets a config names: how LLaMA-Factory resolves, reads, converts, mixes and splits them."""
