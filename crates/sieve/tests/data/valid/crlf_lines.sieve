keep;
keep;
