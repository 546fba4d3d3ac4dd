# Rewrites attention_decode.cu for the CPU emulation (README.md): kernel launches -> emu_launch, cp.async asm ->
# emulated copies, the dynamic shared memory -> a static buffer. Usage: transform.py SRC OUT
import re,sys
s=open(sys.argv[1]).read()
s=re.sub(r'__device__ __forceinline__ void cp_async16\(void\* dst, const void\* src, bool valid\) \{.*?\n\}',
 'inline void cp_async16(void* dst, const void* src, bool valid) { emu_cp_async(dst, src, valid); }', s, flags=re.S)
s=s.replace('__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\\n" ::: "memory"); }',
 'inline void cp_async_commit() { emu_commit(); }')
s=re.sub(r'__device__ __forceinline__ void cp_async_wait\(\) \{.*?\n\}', 'inline void cp_async_wait() { emu_wait(N); }', s, flags=re.S)
s=s.replace('extern __shared__ __align__(16) unsigned char dsm[];','unsigned char* dsm = emu_dsm_buf;')
s=re.sub(r'([A-Za-z_]\w*(?:<[^<>]*>)?)<<<(.*?)>>>\(', r'emu_launch(\1, \2, ', s, flags=re.S)
assert 'asm' not in s, [l for l in s.split('\n') if 'asm' in l]
open(sys.argv[2],'w').write(s)
