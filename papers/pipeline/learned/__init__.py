"""The learned extractor: a CRF mention tagger and a salience model on top of the gazetteer (docs/extraction.md)."""
