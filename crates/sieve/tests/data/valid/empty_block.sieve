if true {}
