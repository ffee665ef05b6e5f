"""Where slimbench keeps what it fetched or computed: the cache root (`paths`), the pinned offline
assets (`assets`) and the memo of results that are a pure function of files and code (`memo`)."""
