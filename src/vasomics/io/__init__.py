"""Readers and writers: images, masks, vessel graphs and ultrasound ensembles."""
