filein "A";
