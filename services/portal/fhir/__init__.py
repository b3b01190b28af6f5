"""FHIR R4 out of the portal's read model: pure resource builders (:mod:`.resources`),
search parameters and keyset paging (:mod:`.search`), the read API (:mod:`.api`), the push
sink (:mod:`.sink`) and the bulk export (:mod:`.export`). Every resource is an R4B model of
``fhir.resources``; no FHIR JSON is written by hand."""
