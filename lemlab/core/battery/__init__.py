"""Probe batteries and kernels: the prompts a run asks and the system messages
its conditions add, plus rephrased variants of a battery."""
