keep; }
