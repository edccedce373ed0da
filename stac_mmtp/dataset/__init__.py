"""The dataset's own content: event inventory, vocabulary, annotations, EMS import, splits, catalogue importers."""
