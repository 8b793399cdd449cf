"""Studies from the window: choosing a study preset and training its variants on a thread of
their own."""
