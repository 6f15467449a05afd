// rhip gen: see include/rhip/gen/
