"""Stop the run when ExampleValidator finds anomalies."""
