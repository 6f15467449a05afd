// http layer
