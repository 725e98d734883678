"""Pieces every vendor uses, written once: PII normalisation and hashing with every vendor
field's rule (pii), the path resolver (paths), reading a Segment event: user attributes, click
ids, e-commerce fields, event-name mapping, consent signals (segment), and amounts (numbers).
The build loop, JSON batching and the OAuth refresh-token grant are in `destinations.base`, the
response helpers in `destinations.classify`."""
