require "variables";
if string :is "${unknown.ns}" "" {keep;}
