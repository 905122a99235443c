require "copy";
keep :copy;
