require "comparator-i;octet";
keep;
