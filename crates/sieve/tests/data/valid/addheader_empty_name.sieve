require "editheader";
addheader "" "v";
