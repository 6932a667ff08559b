"""Training the Gemma model on fimpack's token shards: the data loader and the trainer loop."""
