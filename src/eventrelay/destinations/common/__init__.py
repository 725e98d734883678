"""Pieces every vendor uses, written once: PII normalisation and hashing, the path resolver,
Segment e-commerce helpers, event-name mapping, consent signals."""
