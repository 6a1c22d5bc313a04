"""Lambda entry points: thin, each validates its input and calls one piece of logic."""
