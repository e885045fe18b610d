"""The fast classifier's training recipe: data, fine-tuning, export (torch only here)."""
