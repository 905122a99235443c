require "variables";
set :length :lower "a" "b";
