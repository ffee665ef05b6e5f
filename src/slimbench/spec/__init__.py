"""The variant zoo's specs: the typed spec schema and its checks (`schema`), the zoo of specs (`zoo`)."""
