require "vacation";
vacation "x";
vacation "y";
