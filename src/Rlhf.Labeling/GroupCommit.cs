using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;

namespace Rlhf.Labeling;

/// <summary>
/// Group commit for the store's writes. SQLite has one writer at a time and each durable commit costs an fsync,
/// so concurrent writes are queued and whoever holds the gate runs every queued write in one IMMEDIATE
/// transaction (one fsync for the batch). Each write has its own savepoint: one refused write (a bad rank, a
/// closed item) rolls back alone and the others still commit. A caller's task completes only after the commit
/// that contains its write, so an acknowledged write is on disk.
/// </summary>
internal sealed class GroupCommit(LabelingDatabase database)
{
    private const int MaxBatch = 256;

    private readonly ConcurrentQueue<Write> queue = new();
    private readonly SemaphoreSlim gate = new(1, 1);

    /// <summary>Writes waiting for a commit (for tests).</summary>
    internal int Queued => queue.Count;

    public async Task<T> Run<T>(Func<SqliteConnection, SqliteTransaction, T> work)
    {
        var write = new Write((c, tx) => work(c, tx));
        queue.Enqueue(write);
        while (!write.Done.Task.IsCompleted)
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                // Ours was queued before we took the gate: either an earlier holder committed it, or we will now.
                if (!write.Done.Task.IsCompleted) CommitQueued();
            }
            finally
            {
                gate.Release();
            }
        }

        return (T)(await write.Done.Task.ConfigureAwait(false))!;
    }

    private void CommitQueued()
    {
        var batch = new List<Write>();
        while (batch.Count < MaxBatch && queue.TryDequeue(out var w)) batch.Add(w);
        if (batch.Count == 0) return;
        var results = new object?[batch.Count];
        var errors = new Exception?[batch.Count];
        try
        {
            using var c = database.Connect();
            using var tx = c.BeginTransaction(deferred: false);
            for (int i = 0; i < batch.Count; i++)
            {
                tx.Save("w");
                try
                {
                    results[i] = batch[i].Work(c, tx);
                    tx.Release("w");
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // Whatever one write throws (a bad request's parse error included) fails that write alone: the
                    // others in the batch came from other labelers and must still be saved. If rolling back to the
                    // savepoint fails too, the connection is gone and the outer catch fails the batch.
                    tx.Rollback("w");
                    tx.Release("w");
                    errors[i] = e;
                }
            }

            tx.Commit();
        }
        catch (Exception e)
        {
            // Nothing of this batch is known to be on disk.
            foreach (var w in batch) w.Done.TrySetException(e);
            return;
        }

        for (int i = 0; i < batch.Count; i++)
        {
            if (errors[i] is { } error) batch[i].Done.TrySetException(error);
            else batch[i].Done.TrySetResult(results[i]);
        }
    }

    private sealed class Write(Func<SqliteConnection, SqliteTransaction, object?> work)
    {
        public Func<SqliteConnection, SqliteTransaction, object?> Work { get; } = work;

        public TaskCompletionSource<object?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
