require "fileinto";
fileinto :bogus "A";
