stop;
keep;
