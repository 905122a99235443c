reject "a";
