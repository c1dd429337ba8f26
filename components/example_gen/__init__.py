"""MNIST ingest: IDX / npz readers and the custom TFX ExampleGen."""
