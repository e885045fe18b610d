"""Layer 1: measure a model's own safety, compare it with the outer layers,
and move what layers 2-3 learned back into the weights (export, fine-tune)."""
