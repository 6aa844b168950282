import sys, math
import numpy as np
if not hasattr(np, "bool"):
    np.bool = bool
import bpy
argv = sys.argv[sys.argv.index("--") + 1:]
path, out = argv[0], argv[1]
bpy.ops.wm.read_factory_settings(use_empty=True)
if path.endswith(".glb"):
    bpy.ops.import_scene.gltf(filepath=path)
else:
    bpy.ops.import_scene.obj(filepath=path)
objs = [o for o in bpy.context.scene.objects if o.type == "MESH"]
ob = objs[0]
print("IMPORTED", path, "meshes", len(objs), "verts", len(ob.data.vertices),
      "shape_keys", 0 if ob.data.shape_keys is None else len(ob.data.shape_keys.key_blocks),
      "materials", [m.name for m in ob.data.materials])
imgs = [i for i in bpy.data.images if i.size[0] > 0]
print("IMAGES", [(i.name, tuple(i.size)) for i in imgs])
# frame it
import mathutils
bb = [ob.matrix_world @ mathutils.Vector(c) for c in ob.bound_box]
centre = sum(bb, mathutils.Vector()) / 8
size = max((max(v[i] for v in bb) - min(v[i] for v in bb)) for i in range(3))
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 8
scene.cycles.use_denoising = False
scene.world = bpy.data.worlds.new("w")
scene.world.use_nodes = True
scene.world.node_tree.nodes["Background"].inputs[1].default_value = 1.0
sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
sun.data.energy = 3.0
sun.rotation_euler = (math.radians(60), 0, math.radians(20))
scene.collection.objects.link(sun)
scene.render.resolution_x = scene.render.resolution_y = 320
cam_data = bpy.data.cameras.new("cam")
cam = bpy.data.objects.new("cam", cam_data)
scene.collection.objects.link(cam)
scene.camera = cam
up_is_z = path.endswith(".obj") or path.endswith(".glb")
for k, yaw in enumerate((0, 90, 180)):
    a = math.radians(yaw)
    d = size * 2.2
    # Blender is z-up; both importers convert y-up files to z-up (front = -y)
    cam.location = centre + mathutils.Vector((d * math.sin(a), -d * math.cos(a), 0))
    direction = centre - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.render.filepath = f"{out}_{yaw}.png"
    bpy.ops.render.render(write_still=True)
