require "vacation";
vacation :addresses "a@b.example" "x";
