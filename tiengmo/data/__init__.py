"""Package data of the tiengmo command: the demo district's registry."""
