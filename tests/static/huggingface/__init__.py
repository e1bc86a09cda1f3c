"""Tests of Hugging Face checkpoint folders read statically (src/weighttie/static/huggingface/)."""
