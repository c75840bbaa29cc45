"""Chat as plain data: messages, what each reply was made with, exports, and
the sandbox for a model folder's chat template."""
