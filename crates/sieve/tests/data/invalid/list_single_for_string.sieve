require "fileinto";
fileinto ["x"];
