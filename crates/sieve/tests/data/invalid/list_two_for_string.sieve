require "fileinto";
fileinto ["x","y"];
