"""The clinician portal: a read model of the contract topics in SQL, and the clinic's web pages."""
