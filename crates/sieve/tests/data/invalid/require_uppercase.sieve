require "FILEINTO";
fileinto "x";
