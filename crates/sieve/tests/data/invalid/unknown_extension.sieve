require "teleport";
