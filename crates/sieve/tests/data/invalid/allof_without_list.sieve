if allof { keep; }
