// The part of pngjs the loader tests use to build PNG fixtures (the package ships no types).
declare module 'pngjs' {
  export interface PNGOptions {
    width?: number;
    height?: number;
  }
  export interface PNGWriteOptions {
    colorType?: 0 | 2 | 4 | 6;
    inputColorType?: 0 | 2 | 4 | 6;
    bitDepth?: 8 | 16;
    inputHasAlpha?: boolean;
  }
  export class PNG {
    constructor(options?: PNGOptions);
    width: number;
    height: number;
    data: Buffer;
    static sync: {
      read(buffer: Uint8Array): PNG;
      write(png: PNG, options?: PNGWriteOptions): Buffer;
    };
  }
}
