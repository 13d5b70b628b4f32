// The real estate monitor, inventory (a migrated SQLite temp file) and job engine behind bUnit, over the fake
// hypervisor: only the hypervisor is a double. What every page test sets up is here: the seeded estate (unless a
// class asks for none), MudBlazor's providers a page renders into, the services tests read, and how long to wait.
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using QubesWeb.Hosting;
using MudBlazor.Services;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;

namespace QubesWeb.ComponentTests;

public abstract class ConsoleTestContext : BunitContext, IAsyncLifetime
{
    /// <summary>How long a page may take to show what a test waits for: generous, the machine has 2 cores.</summary>
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "qubesweb-component-" + Guid.NewGuid().ToString("N"));
    private readonly bool _seeded;
    private IRenderedComponent<MudDialogProvider>? _dialogs;
    private IRenderedComponent<MudSnackbarProvider>? _snackbars;

    /// <param name="seeded">Whether <see cref="InitializeAsync"/> writes the small estate of <see cref="SeedAsync"/>.</param>
    protected ConsoleTestContext(bool seeded = true)
    {
        _seeded = seeded;
        Directory.CreateDirectory(_folder);
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices();
        Services.AddLogging();
        Services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        // The app's own wiring (inventory on a temp SQLite file, estate monitor, job kinds, job engine); only the
        // hypervisor is replaced. bUnit runs no hosted services: migrations and the job engine's start are done below.
        Services.AddQubesWeb(new QubesWebOptions { DataDir = _folder, LibvirtUri = "fake:///", Demo = false, Port = 0 });
        Services.RemoveAll<IHypervisor>();
        Services.AddSingleton<IHypervisor>(Hypervisor);
        Services.Configure<LifecycleOptions>(o => { o.StartTimeout = TimeSpan.FromSeconds(20); o.ShutdownTimeout = TimeSpan.FromSeconds(20); });
    }

    protected FakeHypervisor Hypervisor { get; } = new();

    /// <summary>
    /// Finds and clicks in one step on the renderer's thread: a live push (a lifecycle event, a job's progress, a disk
    /// measure) that re-renders between the two would retire the handler the found element names. Returns the click's
    /// own task: a handler that awaits a dialog completes only when the dialog closes.
    /// </summary>
    protected static async Task<Task> ClickFreshAsync<T>(IRenderedComponent<T> cut, Func<IElement> find) where T : IComponent
    {
        Task? click = null;
        await cut.InvokeAsync(() => { click = find().ClickAsync(new MouseEventArgs()); });
        return click!;
    }
    protected QubesWeb.Data.Qubes.Inventory Inventory => Services.GetRequiredService<QubesWeb.Data.Qubes.Inventory>();
    protected EstateMonitor Estate => Services.GetRequiredService<EstateMonitor>();
    protected JobEngine Jobs => Services.GetRequiredService<JobEngine>();
    protected NavigationManager Nav => Services.GetRequiredService<NavigationManager>();
    protected IDbContextFactory<InventoryDbContext> Contexts => Services.GetRequiredService<IDbContextFactory<InventoryDbContext>>();
    protected string PoolDir => Services.GetRequiredService<IOptions<QubesWebOptions>>().Value.PoolDir;

    /// <summary>
    /// MudBlazor's providers, as the app's layout renders them: popovers always (selects and menus need them), the
    /// dialog and snackbar providers unless a test leaves them out. Render them before the page.
    /// </summary>
    protected void RenderProviders(bool dialogs = true, bool snackbars = true)
    {
        Render<MudPopoverProvider>();
        if (dialogs) _dialogs = Render<MudDialogProvider>();
        if (snackbars) _snackbars = Render<MudSnackbarProvider>();
    }

    /// <summary>The dialog provider <see cref="RenderProviders"/> rendered: dialogs and message boxes appear inside it.</summary>
    protected IRenderedComponent<MudDialogProvider> Dialogs => _dialogs ?? throw new InvalidOperationException("RenderProviders first, with dialogs.");

    /// <summary>The snackbar provider <see cref="RenderProviders"/> rendered.</summary>
    protected IRenderedComponent<MudSnackbarProvider> Snackbars => _snackbars ?? throw new InvalidOperationException("RenderProviders first, with snackbars.");

    /// <summary>A qube's root volume row with its revisions, for a test that gives it revisions of its own.</summary>
    protected static Task<Volume> RootVolumeAsync(InventoryDbContext db, string qube) =>
        db.Volumes.Include(v => v.Revisions).SingleAsync(v => v.Kind == VolumeKind.Root && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == qube));

    public virtual async Task InitializeAsync()
    {
        await using (var db = await Contexts.CreateDbContextAsync())
            await db.Database.MigrateAsync();
        await Inventory.EnsureAdminVmAsync();
        await Jobs.StartAsync(CancellationToken.None);
        if (_seeded) await SeedAsync();
    }

    /// <summary>
    /// A small estate: two templates, a netvm, AppVMs with and without network, a standalone and an internal
    /// disposable template, defined in the fake by a real reconciliation; sys-net and work run.
    /// </summary>
    private async Task SeedAsync()
    {
        const long MiB = 1L << 20;
        await Inventory.CreateAllAsync(
        [
            new NewQube("fedora-42", QubeClass.TemplateVM, "black", MemoryMiB: 1024,
                Volumes: [new NewVolume(VolumeKind.Root, null, 10L << 30, 300 * MiB), new NewVolume(VolumeKind.Private, null, 2L << 30, 20 * MiB)]),
            new NewQube("debian-13", QubeClass.TemplateVM, "black"),
            new NewQube("sys-net", QubeClass.AppVM, "red", "fedora-42", ProvidesNetwork: true, MemoryMiB: 425),
            new NewQube("work", QubeClass.AppVM, "blue", "fedora-42", "sys-net", MemoryMiB: 2000,
                // Its root: a snapshot of fedora-42's current revision, made at each start (no file: the fake runs nothing).
                Volumes: [new NewVolume(VolumeKind.Root, null, 10L << 30), new NewVolume(VolumeKind.Private, null, 2L << 30, 6 * MiB),
                    new NewVolume(VolumeKind.Volatile, null, 10L << 30, 2 * MiB)]),
            new NewQube("vault", QubeClass.AppVM, "black", "debian-13"),
            new NewQube("devbox", QubeClass.StandaloneVM, "orange", NetVm: "sys-net", MemoryMiB: 4000),
            new NewQube("default-dvm", QubeClass.AppVM, "gray", "fedora-42", "sys-net",
                Features: new Dictionary<string, string> { ["internal"] = "1" }),
        ]);
        await Estate.ReconcileAsync();
        Hypervisor.Start("sys-net");
        Hypervisor.Start("work");
        await Estate.WaitForStateAsync("work", s => s == RunState.Running, TimeSpan.FromSeconds(10), CancellationToken.None);
        await Estate.WaitForStateAsync("sys-net", s => s == RunState.Running, TimeSpan.FromSeconds(10), CancellationToken.None);
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        // A job still running (a test that left one waiting) must not hold the test up: the engine stops waiting after 5 s.
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5))) await Jobs.StopAsync(stop.Token);
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_folder, recursive: true); }
        catch (IOException) { }
    }
}
