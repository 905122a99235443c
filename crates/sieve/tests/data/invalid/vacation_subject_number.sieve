require "vacation";
vacation :subject 4 "x";
