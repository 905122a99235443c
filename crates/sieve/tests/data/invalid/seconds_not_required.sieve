require "vacation";
vacation :seconds 60 "gone";
